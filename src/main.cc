// kingx: the server binary. Parses the command line and hands over to the
// master (src/master.h); --help, --version and -t answer and exit.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "src/conf/config.h"
#include "src/master/master.h"
#include "src/master/startup_check.h"

int main(int argc, char** argv) {
  using kingx::Command;
  bool test_only = false;
  for (int i = 1; i < argc; ++i) test_only = test_only || std::strcmp(argv[i], "-t") == 0;

  auto parsed = kingx::ParseCommandLine(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "kingx: %s\n", std::string(parsed.status().message()).c_str());
    if (test_only) std::fprintf(stderr, "kingx: configuration test failed\n");
    return 1;
  }
  const kingx::Config& config = parsed->config;
  switch (parsed->command) {
    case Command::kHelp:
      std::fputs(kingx::HelpText().c_str(), stdout);
      return 0;
    case Command::kVersion:
      std::printf("%s\n", kingx::VersionText().c_str());
      return 0;
    case Command::kTest: {
      // Like nginx -t: what a start would check, without starting.
      std::vector<std::string> args;
      for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "-t") != 0) args.emplace_back(argv[i]);
      }
      const kingx::StartupReport report = kingx::CheckStartup(config, args);
      for (const std::string& w : report.warnings) std::fprintf(stderr, "kingx: warning: %s\n", w.c_str());
      for (const std::string& e : report.errors) std::fprintf(stderr, "kingx: %s\n", e.c_str());
      if (!report.errors.empty()) {
        std::fprintf(stderr, "kingx: configuration test failed\n");
        return 1;
      }
      std::fprintf(stderr, "kingx: configuration%s%s is ok\n",
                   config.config_file.empty() ? "" : " file ", config.config_file.c_str());
      std::fprintf(stderr, "kingx: configuration test is successful\n");
      return 0;
    }
    case Command::kRun:
      break;
  }
  if (config.single_process) return kingx::RunSingleProcess(config);
  return kingx::RunMaster(config, argc, argv);
}

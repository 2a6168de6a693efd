// kingx: the server binary. Parses the command line and hands over to the
// master (src/master.h); --help, --version and -t answer and exit.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "src/conf/config.h"
#include "src/master/master.h"
#include "src/worker/serve_options.h"

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
    case Command::kTest:
      // Like nginx -t, also check that the log files can be opened.
      for (const std::string& path : {config.error_log, config.access_log}) {
        if (path.empty()) continue;
        const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
          std::fprintf(stderr, "kingx: cannot open log file %s: %s\n", path.c_str(), std::strerror(errno));
          std::fprintf(stderr, "kingx: configuration test failed\n");
          return 1;
        }
        close(fd);
      }
      std::fprintf(stderr, "kingx: configuration%s%s is ok\n",
                   config.config_file.empty() ? "" : " file ", config.config_file.c_str());
      std::fprintf(stderr, "kingx: configuration test is successful\n");
      return 0;
    case Command::kRun:
      break;
  }
  kingx::RaiseDescriptorLimit();  // workers and the writer inherit it
  if (config.single_process) return kingx::RunSingleProcess(config);
  return kingx::RunMaster(config, argc, argv);
}

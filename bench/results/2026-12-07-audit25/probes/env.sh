export KINGX_BIN=/work/ref/s25/kingx KINGX_TOOL_BIN=/work/ref/s25/kingx-tool

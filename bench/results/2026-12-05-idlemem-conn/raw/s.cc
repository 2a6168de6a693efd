#include <uv.h>
#include <cstdio>
#include <malloc.h>
#include <cstdlib>
#include "http/connection.h"
#include "http/output_queue.h"
#include "src/kv/kv_service.h"
#include "src/worker/timer_wheel.h"
int main(){
 printf("uv_tcp_t %zu uv_handle_t %zu uv_stream_t %zu uv__io_t %zu\n", sizeof(uv_tcp_t), sizeof(uv_handle_t), sizeof(uv_stream_t), sizeof(uv__io_t));
 printf("Connection %zu OutputQueue %zu string %zu KvConnState %zu TimerNode %zu\n", sizeof(kingx::http::Connection), sizeof(kingx::http::OutputQueue), sizeof(std::string), sizeof(kingx::KvConnState), sizeof(kingx::TimerNode));
 for (size_t n : {600, 624, 632, 640, 648, 656, 680, 700}) { void* p = malloc(n); printf("malloc(%zu) usable %zu\n", n, malloc_usable_size(p)); }
}

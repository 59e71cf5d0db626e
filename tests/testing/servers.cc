#include "testing/servers.h"

#include <chrono>
#include <fstream>

namespace kspan::testing {

std::string StartNginx(Subprocess* proc, const std::string& dir, int port, const std::string& locations) {
  std::ofstream(dir + "/nginx.conf") << "worker_processes 1;\n"
                                        "daemon off;\n"
                                        "pid "
                                     << dir << "/nginx.pid;\n"
                                     << "error_log " << dir << "/error.log;\n"
                                     << "events { worker_connections 64; }\n"
                                        "http {\n"
                                        "  access_log off;\n"
                                        "  client_body_temp_path "
                                     << dir << "/tmp;\n"
                                     << "  keepalive_requests 1000;\n"
                                        "  server {\n"
                                        "    listen 127.0.0.1:"
                                     << port << ";\n"
                                     << "    " << locations << "\n"
                                     << "  }\n"
                                        "}\n";
  if (!proc->Start({"/usr/sbin/nginx", "-c", dir + "/nginx.conf", "-p", dir})) return "nginx did not start";
  if (!WaitForPort("127.0.0.1", port, std::chrono::seconds(10))) {
    return "nginx is not listening: " + proc->Stderr() + ReadFileOrEmpty(dir + "/error.log");
  }
  return "";
}

}  // namespace kspan::testing

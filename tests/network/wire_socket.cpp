#include "tests/network/wire_socket.hpp"

#include <stdexcept>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace raft_actor::test {

wire_socket::wire_socket(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd_ < 0
      || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd_ >= 0)
      ::close(fd_);
    throw std::runtime_error("cannot connect to port " + std::to_string(port));
  }
}

wire_socket::~wire_socket() {
  ::close(fd_);
}

bool wire_socket::send_raw(const std::vector<uint8_t>& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    auto n
      = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool wire_socket::send_body(const std::vector<uint8_t>& body) {
  auto n = static_cast<uint32_t>(body.size());
  std::vector<uint8_t> bytes{
    static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
    static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  bytes.insert(bytes.end(), body.begin(), body.end());
  return send_raw(bytes);
}

bool wire_socket::readable(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0)
      return false;
    pollfd p{fd_, POLLIN, 0};
    auto r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0)
      return false;
    if (r > 0)
      return true;
  }
}

bool wire_socket::read_exact(uint8_t* out, size_t n,
                             std::chrono::steady_clock::time_point deadline) {
  size_t done = 0;
  while (done < n) {
    if (!readable(deadline))
      return false;
    auto got = ::recv(fd_, out + done, n - done, 0);
    if (got <= 0)
      return false;
    done += static_cast<size_t>(got);
  }
  return true;
}

std::optional<wire::frame>
wire_socket::receive(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    uint8_t len[4];
    if (!read_exact(len, 4, deadline))
      return std::nullopt;
    uint32_t n = (uint32_t{len[0]} << 24) | (uint32_t{len[1]} << 16)
                 | (uint32_t{len[2]} << 8) | uint32_t{len[3]};
    if (n == 0)
      continue; // a ping
    if (n > (256u << 20))
      return std::nullopt;
    std::vector<uint8_t> body(n);
    if (!read_exact(body.data(), n, deadline))
      return std::nullopt;
    wire::frame f;
    if (!wire::decode(body, f).empty())
      return std::nullopt;
    return f;
  }
}

bool wire_socket::closed_by_peer(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  uint8_t buf[4096];
  for (;;) {
    if (!readable(deadline))
      return false;
    if (::recv(fd_, buf, sizeof buf, 0) <= 0)
      return true;
  }
}

} // namespace raft_actor::test

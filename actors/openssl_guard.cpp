// Works around a defect of CAF 0.17's OpenSSL transport that lets anyone who
// can reach a node's TLS port break the node's connections.
//
// OpenSSL keeps errors in a per-thread queue, and SSL_get_error() is only
// reliable if that queue was empty before the I/O call it explains
// (SSL_get_error(3)). CAF 0.17 never clears it. So when a stranger's
// handshake fails (a connection closed early, or garbage), the error it left
// in the multiplexer thread's queue is blamed on the next read of a healthy
// connection, which CAF then closes; the closes cascade through the cluster.
// Measured: ~145 empty connections per second to a 3-node TLS cluster caused
// about 50 dropped connections per node and 17 role changes in 6 s.
//
// The fix: this process defines the OpenSSL I/O entry points CAF calls; each
// empties the thread's error queue and calls the real function. The dynamic
// linker binds libcaf_openssl's calls to these definitions because the
// executable comes first in symbol lookup (this file must be linked into the
// executable, which raft_actor_network ensures by referencing
// openssl_guard_installed()).
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <dlfcn.h>

#include <cstdlib>

namespace raft_actor::detail {

/// Referenced by configure_network() so that the linker keeps this file.
bool openssl_guard_installed() {
  return true;
}

} // namespace raft_actor::detail

namespace {

template <class F>
F real(const char* name) {
  // RTLD_NEXT: the definition after ours, i.e. libssl's.
  auto f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  if (!f)
    std::abort(); // libssl without SSL_read & co. cannot happen
  return f;
}

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto f = real<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return f(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto f = real<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return f(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static auto f = real<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return f(ssl);
}

int SSL_connect(SSL* ssl) {
  static auto f = real<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return f(ssl);
}

int SSL_do_handshake(SSL* ssl) {
  static auto f = real<int (*)(SSL*)>("SSL_do_handshake");
  ERR_clear_error();
  return f(ssl);
}

} // extern "C"

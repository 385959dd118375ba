#pragma once

#include <string>

// What `sluice --version` prints. Plain function, called by main() before anything starts.
namespace sluice {

// The version, the commit it was built from and the versions of the libraries it runs with
// (as loaded at run time where the library can tell: librdkafka, OpenSSL; else as built
// against), one "name: version" line each after the first.
std::string version_text();

}  // namespace sluice

// A strict VOMS AC validator for the tests, built on VOMS-C's own library
// (libvomsapi, Debian's voms-dev): vomsdata::Retrieve with VERIFY_FULL checks
// the AC signature, the AA certificate via vomsdir/<vo>/<host>.lsc and its
// chain to X509_CERT_DIR, the holder, the validity and the extensions.
// voms-proxy-info does not: it prints attributes even when all of these fail.
//
// usage: voms-validate PROXYFILE   (X509_VOMS_DIR and X509_CERT_DIR from the environment)
// prints "VO <name>" and "FQAN <fqan>" lines; exit 0 if valid, 1 with "FAIL <code> <message>" otherwise.
#include <cstdio>
#include <voms/voms_api.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: voms-validate PROXYFILE\n");
    return 2;
  }
  FILE *f = std::fopen(argv[1], "r");
  if (!f) {
    std::perror(argv[1]);
    return 2;
  }
  vomsdata vd;
  vd.SetVerificationType((verify_type)VERIFY_FULL);
  bool ok = vd.Retrieve(f, RECURSE_CHAIN);
  std::fclose(f);
  if (!ok) {
    std::printf("FAIL %d %s\n", (int)vd.error, vd.ErrorMessage().c_str());
    return 1;
  }
  for (const voms &v : vd.data) {
    std::printf("VO %s\n", v.voname.c_str());
    for (const std::string &fq : v.fqan) std::printf("FQAN %s\n", fq.c_str());
  }
  return 0;
}

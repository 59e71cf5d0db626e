// HTTPS GETs with Bun's fetch (BoringSSL inside Bun's single binary), one after another,
// for tests/integration/tls_bun_test.cc.
//
//   bun https_get.js BASE CACERT PATH...   prints "PATH STATUS" per request
const [base, caFile, ...paths] = process.argv.slice(2);
const ca = await Bun.file(caFile).text();
for (const path of paths) {
  const res = await fetch(base + path, { tls: { ca }, signal: AbortSignal.timeout(10000) });
  await res.text();
  console.log(`${path} ${res.status}`);
}

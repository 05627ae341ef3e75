// SCRAM channel binding of type tls-server-end-point (RFC 5929 §4.1), the only type Postgres and libpq use:
// the hash of the server's certificate, with the hash function of the certificate's signature (SHA-256 in place
// of MD5 and SHA-1). A client that says `channel_binding=require` (what `neonctl connection-string` prints) logs in
// only with SCRAM-SHA-256-PLUS, proving that its TLS session ends at this proxy.
import { createHash, type X509Certificate } from 'node:crypto';

/** The name in a gs2 header `p=<name>`, as libpq sends it. */
export const TLS_SERVER_END_POINT = 'tls-server-end-point';

/** Signature algorithm OID → the hash that tls-server-end-point uses (anything else: SHA-256, as RFC 5929 says). */
const HASH_OF_SIGNATURE: Record<string, string> = {
  '1.2.840.113549.1.1.12': 'sha384', // sha384WithRSAEncryption
  '1.2.840.113549.1.1.13': 'sha512', // sha512WithRSAEncryption
  '1.2.840.113549.1.1.14': 'sha224', // sha224WithRSAEncryption
  '1.2.840.10045.4.3.1': 'sha224', // ecdsa-with-SHA224
  '1.2.840.10045.4.3.3': 'sha384', // ecdsa-with-SHA384
  '1.2.840.10045.4.3.4': 'sha512', // ecdsa-with-SHA512
};

/** The channel-binding data of a server certificate. */
export function tlsServerEndPoint(cert: X509Certificate): Buffer {
  const hash = HASH_OF_SIGNATURE[cert.signatureAlgorithmOid ?? ''] ?? 'sha256';
  return createHash(hash).update(cert.raw).digest();
}

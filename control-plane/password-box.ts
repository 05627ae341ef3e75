// Role passwords kept recoverable for `reveal_password`, never in clear: AES-256-GCM under a key derived from the
// control plane's secret. The proxy still authenticates against the SCRAM verifier; this box only serves reveal.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

export class PasswordBoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PasswordBoxError';
  }
}

export class PasswordBox {
  private readonly key: Buffer;

  constructor(secret: string) {
    if (!secret) throw new PasswordBoxError('the control-plane secret is empty');
    this.key = Buffer.from(hkdfSync('sha256', secret, 'lakebase', 'role-passwords-v1', 32));
  }

  /** `context` (e.g. project id and role name) is bound as associated data: a box moved elsewhere won't open. */
  seal(password: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const ct = Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join(':');
  }

  open(sealed: string, context: string): string {
    const [version, iv, tag, ct] = sealed.split(':');
    if (version !== VERSION || !iv || !tag || ct === undefined) throw new PasswordBoxError('unknown sealed password format');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new PasswordBoxError('the stored password cannot be decrypted (was the control-plane secret changed?)');
    }
  }
}

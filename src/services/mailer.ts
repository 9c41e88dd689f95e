// Where e-mails go. SMTP (nodemailer) when SMTP_URL is set; otherwise nothing leaves the host:
// the log records that a message was due (never its body: a verification link is a credential)
// and, outside production, the message is written to $ACCUNODE_DATA_DIR/outbox/ for a developer
// to open.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from '../logging.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  /** What kind of message (verify_email...), for the log line. */
  kind: string;
}

export interface Mailer {
  readonly transport: 'smtp' | 'outbox' | 'log';
  send(mail: Mail): Promise<void>;
}

/** user@example.com → u***@example.com: enough to tell messages apart in a log, not an address book. */
function maskAddress(address: string): string {
  const at = address.lastIndexOf('@');
  return at > 0 ? `${address[0]}***${address.slice(at)}` : '***';
}

class SmtpMailer implements Mailer {
  readonly transport = 'smtp' as const;
  private readonly t: Transporter;

  constructor(
    smtpUrl: string,
    private readonly from: string,
    private readonly log: Logger,
  ) {
    this.t = nodemailer.createTransport(smtpUrl);
  }

  async send(mail: Mail): Promise<void> {
    await this.t.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text });
    this.log.info({ mail: mail.kind, to: maskAddress(mail.to) }, 'e-mail sent');
  }
}

/** One .eml file per message (RFC 5322 text any mail client opens), mode 0600. */
export class OutboxMailer implements Mailer {
  readonly transport = 'outbox' as const;
  // Names sort in sending order even for two messages in one millisecond.
  private seq = 0;

  constructor(
    readonly dir: string,
    private readonly from: string,
    private readonly log: Logger,
  ) {}

  async send(mail: Mail): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${String(++this.seq).padStart(6, '0')}-${mail.kind}-${randomBytes(4).toString('hex')}.eml`);
    const headers = [`From: ${this.from}`, `To: ${mail.to}`, `Subject: ${mail.subject}`, `Date: ${new Date().toUTCString()}`, 'Content-Type: text/plain; charset=utf-8'];
    writeFileSync(file, `${headers.join('\r\n')}\r\n\r\n${mail.text.replace(/\r?\n/g, '\r\n')}\r\n`, { mode: 0o600 });
    this.log.info({ mail: mail.kind, to: maskAddress(mail.to), file }, 'e-mail not sent (no SMTP_URL): written to the outbox');
  }
}

/** Production without SMTP: the message cannot be delivered, and the log says so (without it). */
export class LogMailer implements Mailer {
  readonly transport = 'log' as const;

  constructor(private readonly log: Logger) {}

  async send(mail: Mail): Promise<void> {
    this.log.warn({ mail: mail.kind, to: maskAddress(mail.to) }, 'e-mail not delivered: SMTP_URL is not set (an operator can verify the address with `accunode user verify`)');
  }
}

export function createMailer(
  config: { SMTP_URL?: string | undefined; MAIL_FROM: string; NODE_ENV: string; dataDir: string },
  log: Logger,
): Mailer {
  if (config.SMTP_URL) return new SmtpMailer(config.SMTP_URL, config.MAIL_FROM, log);
  if (config.NODE_ENV !== 'production') return new OutboxMailer(path.join(config.dataDir, 'outbox'), config.MAIL_FROM, log);
  return new LogMailer(log);
}

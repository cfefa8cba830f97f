/** Builds the account services of one server from the platform. */
import { deriveKey } from '../../platform/accounts/secrets.ts';
import { Throttles } from '../../platform/accounts/throttles.ts';
import { Audit } from '../../platform/audit/audit.ts';
import { ControlDbAuditStore } from '../../platform/audit/control-store.ts';
import { enqueueMail } from '../../platform/mail/outbox.ts';
import type { Platform } from '../../platform/platform.ts';
import { BackgroundWork } from '../background.ts';
import type { AccountServices } from './services.ts';

export function accountServices(platform: Pick<Platform, 'config' | 'control' | 'masterKey' | 'log'>): { services: AccountServices; background: BackgroundWork } {
  const settings = platform.config.accounts;
  const background = new BackgroundWork(platform.log);
  const services: AccountServices = {
    settings,
    argon2: settings.argon2,
    audit: new Audit(new ControlDbAuditStore(platform.control)),
    throttles: new Throttles({ control: platform.control, limits: settings }),
    totpKey: deriveKey(platform.masterKey, 'totp-secrets'),
    csrfKey: deriveKey(platform.masterKey, 'csrf-tokens'),
    sendMail: async (mail) => {
      await enqueueMail(platform.control, mail);
    },
    runLater: (name, work) => {
      background.run(name, work);
    },
  };
  return { services, background };
}

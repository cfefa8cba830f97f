/** Shapes shared by the account routes. */
import { Type } from 'typebox';
import { PASSWORD_MAX_LENGTH } from '../../platform/accounts/passwords.ts';

/** Any string up to 254 characters; its validity is checked by the command, not the schema. */
export const EmailInput = Type.String({ minLength: 1, maxLength: 254 });
/** The length rule is the policy's; the schema only bounds the work an enormous password could cause. */
export const PasswordInput = Type.String({ minLength: 1, maxLength: PASSWORD_MAX_LENGTH * 4 });
export const TotpCode = Type.String({ minLength: 6, maxLength: 10 });
export const RecoveryCode = Type.String({ minLength: 10, maxLength: 20 });
export const Token = Type.String({ minLength: 1, maxLength: 200 });
export const DisplayName = Type.String({ minLength: 1, maxLength: 200, pattern: '\\S' });
export const RoleSchema = Type.Union([Type.Literal('viewer'), Type.Literal('member'), Type.Literal('admin'), Type.Literal('owner')]);

export const CurrentUser = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    displayName: Type.String(),
    role: RoleSchema,
    secondFactor: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const SessionState = Type.Object(
  {
    signedIn: Type.Boolean(),
    /** 'mfa' while the second factor is owed. */
    stage: Type.Union([Type.Literal('none'), Type.Literal('mfa'), Type.Literal('active')]),
    mustEnrolSecondFactor: Type.Boolean(),
    user: Type.Union([CurrentUser, Type.Null()]),
    expiresAt: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

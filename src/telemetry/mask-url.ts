/**
 * A connection URL fit to print: the password (with `keepUser: false` the whole user part) becomes
 * `***`, and so does any query parameter that looks like a secret (`password=`, `sslkey=`, `token=`).
 * String-based, so it also masks what `new URL` refuses (a value without a scheme, a stray `@`).
 */
export function maskUrl(value: string, opts: { keepUser?: boolean } = {}): string {
  const keepUser = opts.keepUser ?? true;
  return value
    .replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?([^?#]*)@/, (_m, scheme: string | undefined, info: string) => {
      const colon = info.indexOf(':');
      if (!keepUser) return `${scheme ?? ''}***@`;
      return colon < 0 ? `${scheme ?? ''}${info}@` : `${scheme ?? ''}${info.slice(0, colon)}:***@`;
    })
    .replace(/([?&][^=&#]*(?:pass|secret|token|key|auth)[^=&#]*=)[^&#]*/gi, '$1***');
}

/**
 * Jurisdictions of P3: where sites and backup repositories are, and where data may be. An ISO 3166-2
 * subdivision lies inside its country, so allowing a country allows its subdivisions; allowing a
 * subdivision allows only that subdivision.
 */

/** ISO 3166-1 alpha-2, optionally with an ISO 3166-2 subdivision: `DE`, `CH-ZH`. */
export const JURISDICTION_PATTERN = '^[A-Z]{2}(-[A-Z0-9]{1,3})?$';

/**
 * Whether `jurisdiction` lies inside one of `allowed`: the same code, or a subdivision of an allowed
 * country (`DE-BY` inside `DE`). `DE-BY` allowed does not admit `DE` or `DE-BE`.
 */
export function withinJurisdictions(jurisdiction: string, allowed: readonly string[]): boolean {
  const country = jurisdiction.split('-')[0];
  return allowed.some((a) => a === jurisdiction || (!a.includes('-') && a === country));
}

/** Types of scripts/check-node.mjs (plain JavaScript: it runs before `npm ci`, without tsx). */
export function satisfies(version: string, range: string): boolean;
export function enginesNode(): string;

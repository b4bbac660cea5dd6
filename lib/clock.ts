/** Injected time: crypto code takes a Clock so known-answer tests can fix "now". */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

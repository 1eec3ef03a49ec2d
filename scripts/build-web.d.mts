export const UI_ROOT: string;
export const UI_DIST: string;
export function uiIsStale(): boolean;
export function buildWeb(options?: { ifStale?: boolean; quiet?: boolean }): Promise<boolean>;

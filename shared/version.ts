/**
 * The software version both programs report (package.json's "version"). Imported as a module, so a built program
 * carries it and needs no package.json beside it at run time.
 */
import pkg from '../package.json' with { type: 'json' };

export const SOFTWARE_VERSION: string = pkg.version;

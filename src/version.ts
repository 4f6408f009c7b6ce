/** Tool version, recorded in every output. Keep in sync with package.json (a test checks). */
export const VERSION = '0.1.0';
/** Version of the JSON output schemas (bump on incompatible change). */
export const SCHEMA_VERSION = 1;

/** Figures: the DOM-free chart library, one function per figure type, and PNG rendering. */
export * from './chart.js';
export * from './figures.js';
export * from './render.js';
export * from './probes.js';

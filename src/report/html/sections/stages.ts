/** Adapters of the later stages (spectrum, principal, bounds, dynamics, interventions). */
import type { StageAdapter } from '../build.js';
import { buildBounds } from './bounds.js';
import { buildDynamics } from './dynamics.js';
import { buildInterventions } from './interventions.js';
import { buildPrincipal, buildSpectrum } from './spectral.js';

export const STAGE_ADAPTERS: StageAdapter[] = [
  { kinds: ['spectrum'], id: 'spectrum', title: 'Spectrum: principal angles and singular values', missing: 'no spectrum.json (rlvr-lens spectrum / analyze).', build: buildSpectrum },
  { kinds: ['principal'], id: 'principal', title: 'Principal and low-magnitude weights', missing: 'no principal.json (rlvr-lens principal / analyze).', build: buildPrincipal },
  { kinds: ['bounds'], id: 'bounds', title: 'Theory checks (Wedin, Weyl, Hoffman–Wielandt, Ky Fan)', missing: 'no bounds.json.', build: buildBounds },
  { kinds: ['dynamics'], id: 'dynamics', title: 'Over training: row and column update ratios', missing: 'no dynamics.json (needs one run’s intermediate checkpoints: --checkpoints).', build: buildDynamics },
  { kinds: ['intervention-overlap'], id: 'interventions', title: 'Interventions (rotated / permuted base)', missing: 'no intervention-overlap.json (needs an RL run from an intervened base and the same-recipe run from the original base).', build: buildInterventions },
];

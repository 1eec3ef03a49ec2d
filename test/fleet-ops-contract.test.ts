/** The ops method table documents itself truthfully: every example fits its schemas; every method has a handler. */
import { describe, expect, it } from 'vitest';
import { OpsApi } from '../fleet/ops-api.js';
import { OPS_METHODS } from '../shared/contract/ops.js';
import { problemsOf } from '../shared/validate.js';

describe('OPS_METHODS', () => {
  it.each(Object.entries(OPS_METHODS))('%s: example params and result fit the schemas', (_name, spec) => {
    expect(problemsOf(spec.params, spec.example.params)).toEqual([]);
    expect(problemsOf(spec.result, spec.example.result)).toEqual([]);
  });

  it('has a fleet handler for every registry method, each in the table', () => {
    const api = new OpsApi(undefined as never, undefined as never, undefined as never);
    const handled = Object.keys(api.handlers());
    for (const m of handled) expect(Object.keys(OPS_METHODS)).toContain(m);
    const registry = Object.keys(OPS_METHODS).filter((m) =>
      /^(boxes|claims|clinics|orgs|users|events|audit|fleet)\./.test(m),
    );
    expect(handled.sort()).toEqual(registry.sort());
  });
});

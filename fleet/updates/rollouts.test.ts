import { describe, expect, it } from 'vitest';
import { includedCount, rolloutOrder } from './rollouts.js';

const ids = Array.from({ length: 200 }, (_, i) => `cb-cb-${String(i).padStart(4, '0')}`);

describe('rollout stages', () => {
  it('orders boxes by a stable hash, whatever order they are given in', () => {
    const a = rolloutOrder(ids);
    const b = rolloutOrder([...ids].reverse());
    expect(b).toEqual(a);
    expect(new Set(a).size).toBe(ids.length);
    // Not the natural order of the ids (a stage is not "the first serials").
    expect(a.slice(0, 20)).not.toEqual(ids.slice(0, 20));
  });

  it('includes ceil(p% of n): 1 of 3 at 33%, 2 at 34%, all at 100%, never none', () => {
    expect(includedCount(3, 33)).toBe(1);
    expect(includedCount(3, 34)).toBe(2);
    expect(includedCount(3, 100)).toBe(3);
    expect(includedCount(200, 10)).toBe(20);
    expect(includedCount(1, 1)).toBe(1);
  });

  it('keeps the boxes of a smaller stage in every larger one, and the same box in with other boxes added', () => {
    const order = rolloutOrder(ids);
    const at = (p: number) => new Set(order.slice(0, includedCount(order.length, p)));
    const ten = at(10);
    const fifty = at(50);
    for (const id of ten) expect(fifty.has(id)).toBe(true);
    // Adding boxes to the fleet moves a box's rank, never its relative order to the others.
    const more = rolloutOrder([...ids, 'cb-cb-9999', 'cb-cb-9998']);
    const pos = (list: string[], id: string) => list.indexOf(id);
    const [x, y] = [order[3] as string, order[7] as string];
    expect(pos(more, x) < pos(more, y)).toBe(true);
  });
});

/** Keys and bytes shared by the storage tests. */
export const KEY = 'projects/p1/scene-0/image-0-g1-a1.png';
export const keyN = (n: number) => `projects/p1/scene-${n}/image-0-g1-a1.png`;

/** Bytes that are a view into a larger buffer: only the view may be stored. */
export function imageBytes(seed: number, length = 1500): Uint8Array {
  const backing = Buffer.alloc(length + 2000, 0xee);
  const view = backing.subarray(100, 100 + length);
  for (let i = 0; i < view.length; i++) view[i] = (i * 31 + seed) & 0xff;
  return view;
}

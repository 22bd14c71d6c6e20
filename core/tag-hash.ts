import { crc32c } from '@node-rs/crc32';

/**
 * The tag code stored in each consume-queue entry, so a tag filter can skip a message without
 * reading it from the commit log. 0 means "no tag"; a tag hashes to CRC32C(utf8(tag)) + 1, which
 * is never 0. Two tags may share a code, so a match is confirmed against the stored tag.
 */
export function tagHash(tag: string | undefined): number {
  if (tag === undefined) return 0;
  return crc32c(tag) + 1;
}

// Reads a podcast feed on stdin, parses it with podcast-partytime (the Podcast Index
// crawler's parser) and prints the parsed object as JSON on stdout.
// Usage: node tests/js/parse.mjs < feed.xml
// Exit 2 when the parser returns nothing (it could not read the feed).
import { readFileSync } from "node:fs";
import { parseFeed } from "podcast-partytime";

const xml = readFileSync(0, "utf8");
const feed = parseFeed(xml, { allowMissingGuid: false });
if (!feed) {
  process.stderr.write("podcast-partytime could not parse the feed\n");
  process.exit(2);
}
const replacer = (_key, value) => {
  if (value instanceof Set) return [...value];
  if (value instanceof Map) return Object.fromEntries(value);
  return value;
};
process.stdout.write(JSON.stringify(feed, replacer));

// OpenAPI documents -> Postman collections with openapi-to-postmanv2, for scripts/postman.py:
//
//     node convert.js '{"folderStrategy": "Tags", ...}' ../openapi/polls/v1.yaml ../openapi/polls/v2.yaml
//
// prints a JSON list, one collection per document, in the order given. The converter fakes example
// values (strings with a `pattern`) with Math.random even when told not to fake schemas; reseeding
// before each document makes every collection the same on every run (and a change to one schema
// changes only its own collection), so the committed file can be compared with a regenerated one.
"use strict";

const fs = require("fs");
const path = require("path");

let seed = 1;
Math.random = () => {
  seed = (seed * 48271) % 2147483647; // Park-Miller: deterministic, enough for example values
  return (seed - 1) / 2147483646;
};

const Converter = require(path.join(__dirname, "node_modules", "openapi-to-postmanv2"));

function convert(specPath, options) {
  seed = 20261201;
  return new Promise((resolve, reject) => {
    Converter.convertV2({ type: "string", data: fs.readFileSync(specPath, "utf8") }, options, (error, result) => {
      if (error || !result.result) reject(new Error(`${specPath}: ${error || result.reason}`));
      else resolve(result.output[0].data);
    });
  });
}

async function main() {
  const [optionsJson, ...specs] = process.argv.slice(2);
  const collections = [];
  for (const spec of specs) collections.push(await convert(spec, JSON.parse(optionsJson)));
  process.stdout.write(JSON.stringify(collections));
}

main().catch((error) => {
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
});

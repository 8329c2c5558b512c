// SPDX-License-Identifier: MIT
// Validates every document in the given YAML files against the Kubernetes
// OpenAPI schemas shipped by kubernetes-models; exits 1 naming the file,
// the document and the failing path. With --self-check it first proves
// that a deliberately broken Deployment is rejected.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

async function modelFor(apiVersion, kind) {
  const mod = await import(`kubernetes-models/${apiVersion}`);
  if (!mod[kind]) throw new Error(`unknown kind ${kind} in ${apiVersion}`);
  return mod[kind];
}

async function validate(doc) {
  const Model = await modelFor(doc.apiVersion, doc.kind);
  new Model(doc).validate();
}

async function selfCheck() {
  const broken = {
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "broken" },
    spec: { selector: { matchLabels: { a: "b" } },
      template: { metadata: { labels: { a: "b" } },
        spec: { containers: [{ name: "c", image: "i", ports: [{ containerPort: "1337" }] }] } } },
  };
  try { await validate(broken); } catch { return; }
  console.error("validate: the self-check's broken manifest was accepted; the validator is not working");
  process.exit(1);
}

const args = process.argv.slice(2);
if (args[0] === "--self-check") { await selfCheck(); args.shift(); }
let failed = 0, count = 0;
for (const file of args) {
  for (const [i, parsed] of parseAllDocuments(readFileSync(file, "utf8")).entries()) {
    if (parsed.errors.length) { console.error(`${file} document ${i}: ${parsed.errors[0].message}`); failed++; continue; }
    const doc = parsed.toJS();
    if (!doc) continue;
    count++;
    try { await validate(doc); }
    catch (e) { console.error(`${file} document ${i} (${doc.kind} ${doc.metadata?.name}): ${e.message}`); failed++; }
  }
}
console.log(`validate: ${count} documents, ${failed} invalid`);
process.exit(failed ? 1 : 0);

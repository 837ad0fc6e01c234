// An independent verifier for the ledger's credentials: Digital Bazaar's @digitalbazaar/vc
// with the eddsa-rdfc-2022 cryptosuite (jsonld.js in safe mode). Reads JSON Lines on stdin,
// writes one {"line", "ok", "errors"} per credential, exits 0 only when every one verified.
// The document loader serves the pinned contexts (argv[2]: a folder holding them) and did:key
// documents derived from the DID itself; it refuses every other URL, so nothing is fetched.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';

const folder = process.argv[2];
const FILES = {
  'https://www.w3.org/ns/credentials/v2': 'credentials-v2.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': 'ob-v3p0-context-3.0.3.json',
  'https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json': 'clr-v2p0-context-2.0.1.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/extensions.json': 'ob-v3p0-extensions.json',
};
const contexts = Object.fromEntries(Object.entries(FILES).map(
  ([url, name]) => [url, JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8'))]));

function didKeyDocument(did) {
  const key = did.slice('did:key:'.length);
  const method = {id: `${did}#${key}`, type: 'Multikey', controller: did, publicKeyMultibase: key};
  return {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
    id: did, verificationMethod: [method], assertionMethod: [method.id], authentication: [method.id],
  };
}

async function documentLoader(url) {
  if(Object.hasOwn(contexts, url)) {
    return {contextUrl: null, documentUrl: url, document: structuredClone(contexts[url])};
  }
  if(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+(#z6Mk[1-9A-HJ-NP-Za-km-z]+)?$/.test(url)) {
    const [did, fragment] = url.split('#');
    const document = didKeyDocument(did);
    if(fragment !== undefined) {
      const method = document.verificationMethod.find(m => m.id === url);
      if(!method) throw new Error(`no verification method ${url}`);
      return {contextUrl: null, documentUrl: url,
        document: {'@context': 'https://w3id.org/security/multikey/v1', ...method}};
    }
    return {contextUrl: null, documentUrl: url, document};
  }
  throw new Error(`refused to load ${url}: not pinned`);
}

let number = 0;
let failed = 0;
for await (const line of readline.createInterface({input: process.stdin, crlfDelay: Infinity})) {
  number += 1;
  if(!line.trim()) continue;
  let result;
  try {
    const credential = JSON.parse(line);
    const suite = new DataIntegrityProof({cryptosuite});
    const answer = await vc.verifyCredential({credential, suite, documentLoader});
    const errors = answer.verified ? [] :
      (answer.error?.errors ?? [answer.error]).map(e => String(e?.message ?? e));
    result = {line: number, ok: answer.verified, errors};
  } catch(e) {
    result = {line: number, ok: false, errors: [String(e?.message ?? e)]};
  }
  if(!result.ok) failed += 1;
  process.stdout.write(JSON.stringify(result) + '\n');
}
process.exit(failed || number === 0 ? 1 : 0);

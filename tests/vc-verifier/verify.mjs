// An independent verifier for the ledger's credentials: Digital Bazaar's @digitalbazaar/vc
// with the eddsa-rdfc-2022 cryptosuite (jsonld.js in safe mode), and the status of each with
// @digitalbazaar/vc-bitstring-status-list (W3C Bitstring Status List v1.0). Reads JSON Lines on
// stdin, writes one {"line", "ok", "errors", "revoked", "listLength"} per credential, exits 0
// only when every one verified (a revoked credential verifies: "revoked" tells its status, from
// its list, itself verified: same issuer, its own proof). The document loader serves the pinned
// contexts (argv[2]: a folder holding them), did:key documents derived from the DID itself and
// the status list credentials in argv[3] (optional: JSON Lines, each served under its id, as
// GET /credentials/status/<n> answered it); it refuses every other URL, so nothing is fetched.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {checkStatus, decodeList} from '@digitalbazaar/vc-bitstring-status-list';

const folder = process.argv[2];
const FILES = {
  'https://www.w3.org/ns/credentials/v2': 'credentials-v2.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': 'ob-v3p0-context-3.0.3.json',
  'https://purl.imsglobal.org/spec/clr/v2p0/context-2.0.1.json': 'clr-v2p0-context-2.0.1.json',
  'https://purl.imsglobal.org/spec/ob/v3p0/extensions.json': 'ob-v3p0-extensions.json',
};
const contexts = Object.fromEntries(Object.entries(FILES).map(
  ([url, name]) => [url, JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8'))]));
const lists = Object.fromEntries((process.argv[3] ? fs.readFileSync(process.argv[3], 'utf8') : '')
  .split('\n').filter(line => line.trim()).map(line => JSON.parse(line)).map(list => [list.id, list]));

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
  if(Object.hasOwn(lists, url)) {
    return {contextUrl: null, documentUrl: url, document: structuredClone(lists[url])};
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
    const answer = await vc.verifyCredential({credential, suite, documentLoader, checkStatus});
    const status = answer.statusResult;
    const errors = answer.verified ? [] : [
      ...(answer.error ? (answer.error.errors ?? [answer.error]) : []),
      ...(status?.error ? [status.error] : [])].map(e => String(e?.message ?? e));
    result = {line: number, ok: answer.verified, errors, revoked: null, listLength: null};
    if(answer.verified && status) {
      // Each status entry's bit (true: set, the credential revoked) and its list's length.
      result.revoked = status.results.some(r => r.status === true);
      const url = status.results[0].credentialStatus.statusListCredential;
      const {encodedList} = (await documentLoader(url)).document.credentialSubject;
      result.listLength = (await decodeList({encodedList})).length;
    }
  } catch(e) {
    result = {line: number, ok: false, errors: [String(e?.message ?? e)]};
  }
  if(!result.ok) failed += 1;
  process.stdout.write(JSON.stringify(result) + '\n');
}
process.exit(failed || number === 0 ? 1 : 0);

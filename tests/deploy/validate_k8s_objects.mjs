// Checks that what a test's stand-in Kubernetes API server answers (tests/apps/k8s/
// fake_apiserver.py) has the shapes the real API server gives, against the Kubernetes
// API's JSON schemas (npm kubernetes-models, generated from the Kubernetes OpenAPI spec):
// a PodList, or a watch event whose object is a Pod (or a Status for type ERROR); and a
// watch event's object carries its kind and apiVersion, as the server sends it. (List
// items are checked as Pods with kind and apiVersion added where they lack them: the
// models require them at the top of every object.)
//   node validate_k8s_objects.mjs FILE...      exit 0, or 1 with one line per problem
import { readFileSync } from 'node:fs';
import { Pod, PodList } from 'kubernetes-models/v1';
import { Status, WatchEvent } from '@kubernetes-models/apimachinery/apis/meta/v1';

const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); };

function validate(Model, obj, label) {
  try {
    new Model(obj).validate();
  } catch (e) {
    problems.push(`${label}: ${e.message}`);
  }
}

for (const file of process.argv.slice(2)) {
  let obj;
  try {
    obj = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`${file}: not JSON: ${e.message}`);
    continue;
  }
  if (obj.kind === 'PodList') {
    check(obj.apiVersion === 'v1', `${file}: a PodList's apiVersion is v1`);
    check(typeof obj.metadata?.resourceVersion === 'string', `${file}: a PodList has metadata.resourceVersion`);
    const items = (obj.items ?? []).map((item) => ({ apiVersion: 'v1', kind: 'Pod', ...item }));
    validate(PodList, { ...obj, items }, file);
  } else if ('type' in obj && 'object' in obj) {
    check(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'].includes(obj.type), `${file}: watch type ${obj.type}`);
    validate(WatchEvent, obj, file);
    if (obj.type === 'ERROR') {
      validate(Status, obj.object, `${file}: object`);
    } else {
      check(obj.object.kind === 'Pod' && obj.object.apiVersion === 'v1',
            `${file}: a watch event's object carries kind Pod and apiVersion v1`);
      validate(Pod, obj.object, `${file}: object`);
    }
  } else {
    problems.push(`${file}: neither a PodList nor a watch event`);
  }
}
for (const p of problems) console.log(p);
process.exit(problems.length ? 1 : 0);

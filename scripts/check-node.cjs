'use strict';
// Runs first in every npm script (`node scripts/check-node.cjs && node src/main.ts`), so an old
// Node says in one line what it needs instead of failing on the first `.ts` import
// (ERR_UNKNOWN_FILE_EXTENSION). It must itself run on any Node: CommonJS, no modern syntax.

/** The oldest Node that runs the service: it loads `.ts` files without a flag since 22.12. */
var MINIMUM = [22, 12, 0];

/** The one-line problem with a Node version ('20.20.2'), or undefined when it is recent enough. */
function nodeVersionProblem(version) {
  var parts = String(version).replace(/^v/, '').split('.').map(Number);
  for (var i = 0; i < MINIMUM.length; i++) {
    var part = parts[i] || 0;
    if (part > MINIMUM[i]) return undefined;
    if (part < MINIMUM[i]) {
      return (
        'sceneworks needs Node.js >= ' + MINIMUM[0] + '.' + MINIMUM[1] + ', but this is Node.js ' + version +
        ': install Node.js 24 LTS (https://nodejs.org/en/download, or `nvm install 24`), then run npm again.'
      );
    }
  }
  return undefined;
}

module.exports = { nodeVersionProblem: nodeVersionProblem };

if (require.main === module) {
  var problem = nodeVersionProblem(process.versions.node);
  if (problem) {
    console.error(problem);
    process.exit(1);
  }
}

import type { PageData } from '../types.js';
import { startComparison } from './compare-page.js';
import { startReport } from './report-page.js';

/** Entry point of the bundled client: reads the page's JSON data and builds the page. */
function main(): void {
  const node = document.getElementById('circuitry-data');
  if (!node?.textContent) throw new Error('circuitry: the page holds no data element');
  const data = JSON.parse(node.textContent) as PageData;
  if (data.kind === 'report') startReport(data);
  else startComparison(data);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();

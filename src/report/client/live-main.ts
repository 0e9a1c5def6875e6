import { LIVE_IDS } from '../live-types.js';
import type { PageData } from '../types.js';
import { startComparison } from './compare-page.js';
import { liveComparison } from './live-compare.js';
import { liveReport, readLiveData } from './live.js';
import { startReport } from './report-page.js';

/** Entry point of a live page's client: the report (or comparison) page plus live patching. */
function main(): void {
  const node = document.getElementById('circuitry-data');
  if (!node?.textContent) throw new Error('circuitry: the page holds no data element');
  const data = JSON.parse(node.textContent) as PageData;
  const live = readLiveData(LIVE_IDS.data);
  if (data.kind === 'report') startReport(data, liveReport(data, live));
  else {
    startComparison(data);
    liveComparison(live);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();

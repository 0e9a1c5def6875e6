// The entry point of a pool worker thread: TypeScript through tsx (as bin/circuitry.js runs the
// CLI), then the task handler of worker.ts.
import { register } from 'tsx/esm/api';

register();
const { handleTask } = await import('./worker.ts');
export default handleTask;

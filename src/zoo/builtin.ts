// Importing this module registers every built-in model with the zoo registry.
import './planted/induction.js';
import './planted/and.js';
import './planted/or.js';
import './planted/negative.js';
import './trained/index.js';

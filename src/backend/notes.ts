// No tfjs import here: the CLI reads this before it loads any backend (so --help stays instant).

/** Said once by the CLI when the cpu backend is asked for (measured: matmul ~0.8 vs ~22 GFLOP/s on wasm). */
export const CPU_BACKEND_WARNING = 'warning: the cpu backend is about 30× slower than wasm (the default); use it only to debug a kernel';

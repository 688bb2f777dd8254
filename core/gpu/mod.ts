/**
 * WebGPU context, device arrays, kernel recording and element-wise/reduction kernels.
 *
 * @module
 */
export * from "./context.ts";
export * from "./ops.ts";

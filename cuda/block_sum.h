/* The sum of one double per thread of a block, by a fixed tree in shared memory: the same sum in
 * every run, where atomics would add in whatever order the threads finish. */
#ifndef DPTRAIN_BLOCK_SUM_H
#define DPTRAIN_BLOCK_SUM_H

/* part: blockDim.x doubles of shared memory, blockDim.x a power of two. Every thread gets the sum. */
__device__ static inline double block_sum(double v, double *part)
{
    part[threadIdx.x] = v;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            part[threadIdx.x] += part[threadIdx.x + half];
        __syncthreads();
    }
    double sum = part[0];
    __syncthreads(); /* part may be reused at once */
    return sum;
}

#endif

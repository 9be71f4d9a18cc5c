// The float64 instantiation of the fused CPU kernels (kernels.cpp), compiled as its own
// translation unit so that it builds in parallel with the float32 one.
#define QUADFIRE_KERNEL_T double
#include "kernels.cpp"

/* Plain-C references for the prompt module's tests: prompts built the direct way (form the whole
 * (P, C) prompt, then pool), their gradients, AdamW, clipping, and singular values by one-sided
 * Jacobi. All in double; independent of lamp's device code. */
#ifndef LAMP_TEST_REF_PROMPT_H
#define LAMP_TEST_REF_PROMPT_H

#include <stddef.h>
#include <stdint.h>

/* Methods as in lamp_prompt_method. */
enum { REF_PROMPT_LAMP = 0, REF_PROMPT_PT = 1, REF_PROMPT_DPT = 2 };

/* Parameters of a prompt as one flat vector theta, row-major, in this order:
 *   LAMP  U (l, r), q (r), V (d, r);   PT  P (l, d);   DPT  A (l, r), B (r, d). */
size_t ref_prompt_nparams(int method, size_t l, size_t d, size_t r);

/* out (ceil(l / s), d) = pool_s(P_hat), P_hat (l, d) formed in full first:
 * LAMP sum_k q_k u_k v_k^T, PT P, DPT A B. */
void ref_prompt_forward(int method, size_t l, size_t d, size_t r, size_t s, const double *theta,
                        double *out);

/* dtheta = d(sum_jc gout[j, c] out[j, c]) / dtheta for gout (ceil(l / s), d): unpools gout to
 * G (l, d), then the textbook products (dU = G V diag q, ...). Overwrites dtheta. */
void ref_prompt_backward(int method, size_t l, size_t d, size_t r, size_t s, const double *theta,
                         const double *gout, double *dtheta);

/* sum_i x_i y_i. */
double ref_dot(const double *x, const double *y, size_t n);

/* One AdamW step (PyTorch order: decay, moments, bias-corrected update), step t from 1. */
void ref_adamw_step(double *p, double *m, double *v, const double *g, size_t n, double lr,
                    double beta1, double beta2, double eps, double weight_decay, uint64_t t);

/* Element i of lamp's uniform initialisation stream (seed, first): the value it must hold. */
float ref_prompt_uniform(uint64_t seed, uint64_t first, uint64_t i, float lo, float hi);

/* Singular values of A (m x n, row-major), descending, min(m, n) of them, by one-sided Jacobi
 * on the columns of A or A^T, whichever has fewer. */
void ref_singular_values(const double *a, size_t m, size_t n, double *sv);

/* IEEE half bits of x, round to nearest even (normal and subnormal range, no NaN handling). */
uint16_t ref_f32_to_f16(float x);

#endif

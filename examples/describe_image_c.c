/* The same job through the C API.
 *   describe_image_c MODEL_DIR IMAGE "question" [max_tokens] [context_length] */
#include <stdio.h>
#include <stdlib.h>

#include "qvl/qvl.h"

static int check(qvl_status s) {
  if (s != QVL_OK) fprintf(stderr, "error %d: %s\n", (int)s, qvl_last_error());
  return s == QVL_OK;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL_DIR IMAGE QUESTION [MAX_TOKENS] [CONTEXT_LENGTH]\n", argv[0]);
    return 2;
  }
  qvl_model* model = NULL;
  qvl_inputs* inputs = NULL;
  qvl_generator* gen = NULL;
  qvl_stream* stream = NULL;
  qvl_generator_params params;
  const char* images[1] = {argv[2]};
  int ok = check(qvl_model_load(argv[1], 0, argc > 5 ? atoll(argv[5]) : 4096, &model)) &&
           check(qvl_generator_params_default(model, &params)) &&
           check(qvl_inputs_from_prompt(model, argv[3], images, 1, &inputs));
  if (ok) {
    params.max_new_tokens = argc > 4 ? atoi(argv[4]) : 128;
    ok = check(qvl_generator_create(model, &params, &gen)) && check(qvl_generator_append_inputs(gen, inputs)) &&
         check(qvl_stream_create(model, &stream));
  }
  int generated = 0;
  /* Every step yields a token, the last one too (EOS, max_tokens or a full context). */
  while (ok && !qvl_generator_is_done(gen)) {
    ok = check(qvl_generator_generate_next_token(gen));
    if (ok) fputs(qvl_stream_decode(stream, qvl_generator_next_token(gen)), stdout), ++generated;
  }
  if (ok) printf("%s\n", qvl_stream_flush(stream));
  if (ok)
    fprintf(stderr, "[%zu prompt tokens, %d generated, stop: %s%s]\n", qvl_inputs_token_count(inputs), generated,
            qvl_generator_stop_reason(gen), qvl_generator_context_full(gen) ? " (the context is full)" : "");
  qvl_stream_free(stream);
  qvl_generator_free(gen);
  qvl_inputs_free(inputs);
  qvl_model_free(model);
  return ok ? 0 : 1;
}

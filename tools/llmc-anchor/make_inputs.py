#!/usr/bin/env python3
# Inputs for timing llm.c's train_gpt2.c here, where nothing can be downloaded: a GPT-2 124M checkpoint in its
# format (version 3: float32, vocabulary padded to 50304) with random N(0, 0.02) weights, and token files of random
# GPT-2 ids. Only the step time is measured, which does not depend on the values.
import array, random, struct
random.seed(1)
L, C, V, Vp, maxT = 12, 768, 50257, 50304, 1024
sizes = [Vp*C, maxT*C, L*C, L*C, L*3*C*C, L*3*C, L*C*C, L*C, L*C, L*C, L*4*C*C, L*4*C, L*C*4*C, L*C, C, C]
block = array.array('f', (random.gauss(0, 0.02) for _ in range(1 << 20)))
with open('gpt2_124M.bin', 'wb') as f:
    header = [20240326, 3, maxT, V, L, 12, C, Vp] + [0] * 248
    f.write(struct.pack('256i', *header))
    total = sum(sizes)
    while total > 0:
        n = min(total, len(block))
        f.write(block[:n].tobytes())
        total -= n
for name, count in [('train', 1 << 20), ('val', 1 << 16)]:
    tokens = array.array('H', (random.randrange(V) for _ in range(count)))
    with open(f'dev/data/tinyshakespeare/tiny_shakespeare_{name}.bin', 'wb') as f:
        f.write(struct.pack('256i', *([20240520, 1, count] + [0] * 253)))
        f.write(tokens.tobytes())
print('params', sum(sizes))

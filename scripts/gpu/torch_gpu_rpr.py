# PyTorch f16/bf16 matmul on the GPU with cuBLAS's reduced-precision reductions off (as Plumb's
# cuda:0 sets them), timed both ways: 20 calls queued then one sync, and a sync after every call
# (as `plumb bench` times it).
import torch, time, statistics
dev = "cuda"
for flag in [True, False]:
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = flag
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = flag
    for dt in [torch.float16, torch.bfloat16]:
        for n in [2048, 4096]:
            a = torch.randn(n, n, device=dev, dtype=dt); b = torch.randn(n, n, device=dev, dtype=dt)
            for _ in range(5): a @ b
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(50): a @ b
            torch.cuda.synchronize()
            q = (time.perf_counter() - t) / 50
            per = []
            for _ in range(200):
                t = time.perf_counter(); a @ b; torch.cuda.synchronize(); per.append(time.perf_counter() - t)
            s = statistics.median(per)
            print(f"torch {str(dt).split('.')[-1]} n={n} reduced_precision_reduction={flag} queued {2*n**3/q/1e9:.0f} GFLOP/s, sync each {2*n**3/s/1e9:.0f} GFLOP/s")

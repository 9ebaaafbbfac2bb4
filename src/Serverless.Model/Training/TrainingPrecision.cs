using static TorchSharp.torch;

namespace Serverless.Model.Training;

/// <summary>What a spec's <c>precision</c> means for libtorch (kept beside the model: the spec itself is torch-free).</summary>
public static class TrainingPrecision
{
    extension(TrainingSpec spec)
    {
        /// <summary>The dtype training multiplies in, or null for float32 throughout.</summary>
        public ScalarType? ComputeType => spec.Precision switch
        {
            "bf16" => ScalarType.BFloat16,
            "auto" when NativeRuntime.CpuHasBf16 => ScalarType.BFloat16,
            _ => null,
        };
    }
}

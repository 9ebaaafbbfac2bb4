using System.Diagnostics;
using System.Net.Sockets;
using Azure.Storage.Blobs;

namespace Serverless.Contracts;

/// <summary>
/// Azurite's blob service for the contract suite. Uses <c>AZURITE_BLOB_ENDPOINT</c> (or 127.0.0.1:10000) when
/// something answers there — `.ci/run` starts one — else starts Azurite from <c>.ci/azurite/</c> (installing it with
/// npm the first time) on a free port, and stops it afterwards. When none can be had the tests fail, saying why: they
/// never skip.
/// </summary>
public sealed class AzuriteFixture : IDisposable
{
    // Azurite's documented well-known development account.
    private const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    private readonly Process? _process;

    public AzuriteFixture()
    {
        var endpoint = Environment.GetEnvironmentVariable("AZURITE_BLOB_ENDPOINT") ?? "http://127.0.0.1:10000/devstoreaccount1";
        var uri = new Uri(endpoint);
        if (!AnswersWithin(uri.Host, uri.Port, TimeSpan.FromSeconds(Environment.GetEnvironmentVariable("AZURITE_BLOB_ENDPOINT") is null ? 1 : 20)))
        {
            var port = FreePort();
            _process = Start(port, out var problem);
            if (_process is null)
            {
                Problem = problem;
                return;
            }

            endpoint = $"http://127.0.0.1:{port}/devstoreaccount1";
            if (!AnswersWithin("127.0.0.1", port, TimeSpan.FromSeconds(90), _process))
            {
                Problem = $"Azurite started from .ci/azurite did not answer on port {port} within 90 s{(_process.HasExited ? $" (it exited with {_process.ExitCode})" : "")}.";
                return;
            }
        }

        ConnectionString = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AccountKey};BlobEndpoint={endpoint};";
        Service = new BlobServiceClient(ConnectionString);
    }

    /// <summary>The client, or null when Azurite could not be reached or started (see <see cref="Problem"/>).</summary>
    public BlobServiceClient? Service { get; }

    /// <summary>The emulator's connection string (its well-known development account), once available.</summary>
    public string? ConnectionString { get; }

    /// <summary>Why there is no Azurite.</summary>
    public string? Problem { get; }

    public BlobServiceClient Require() => Service ?? throw new InvalidOperationException(
        $"Azurite is not available: {Problem} Run .ci/run, or start it: npm ci --prefix .ci/azurite && .ci/azurite/node_modules/.bin/azurite-blob --skipApiVersionCheck --inMemoryPersistence");

    /// <summary>
    /// Polls with blocking connects: a loaded test run can starve the thread pool, and an async connect waited on with a
    /// short timeout then reads as "nothing listens" (a CI run met that). A refused loopback connect fails at once.
    /// </summary>
    private static bool AnswersWithin(string host, int port, TimeSpan wait, Process? process = null)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try
            {
                using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { SendTimeout = 2000, ReceiveTimeout = 2000 };
                socket.Connect(host, port);
                return true;
            }
            catch (SocketException)
            {
                if (DateTime.UtcNow > deadline || process is { HasExited: true })
                {
                    return false;
                }

                Thread.Sleep(200);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static Process? Start(int port, out string? problem)
    {
        problem = null;
        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "Serverless.sln")))
        {
            root = Path.GetDirectoryName(root);
        }

        if (root is null)
        {
            problem = "the repository root (Serverless.sln) was not found above the test binaries.";
            return null;
        }

        var folder = Path.Combine(root, ".ci", "azurite");
        var azurite = Path.Combine(folder, "node_modules", ".bin", "azurite-blob");
        if (!File.Exists(azurite))
        {
            using var npm = Process.Start(new ProcessStartInfo("npm", ["ci", "--no-audit", "--no-fund", "--prefix", folder]) { RedirectStandardOutput = true, RedirectStandardError = true });
            if (npm is null || !npm.WaitForExit(TimeSpan.FromMinutes(5)) || npm.ExitCode != 0 || !File.Exists(azurite))
            {
                problem = "it is not running and `npm ci --prefix .ci/azurite` could not install it.";
                return null;
            }
        }

        var start = new ProcessStartInfo(azurite, ["--skipApiVersionCheck", "--inMemoryPersistence", "--silent", "--blobHost", "127.0.0.1", "--blobPort", port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start);
        if (process is not null)
        {
            // Drain its output so a full pipe can never stall it.
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        return process;
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
        }

        _process?.Dispose();
    }
}

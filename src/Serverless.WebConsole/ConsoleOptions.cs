using System.Net;
using System.Security.Cryptography;

namespace Serverless.WebConsole;

/// <summary>How <c>tune up</c> serves the web console.</summary>
public sealed record ConsoleOptions
{
    /// <summary>The default port. <value>7000</value>.</summary>
    public const int DefaultPort = 7000;

    /// <summary>The TCP port; 0 picks a free one (tests). <value>7000</value>.</summary>
    public int Port { get; init; } = DefaultPort;

    /// <summary>The address to listen on. <value>127.0.0.1</value>: only this machine can connect.</summary>
    public IPAddress Listen { get; init; } = IPAddress.Loopback;

    /// <summary>The access token every request must carry (query once, then cookie; header for changes). <value>32 random bytes, hex</value>.</summary>
    public string Token { get; init; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>Whether the console listens on loopback only.</summary>
    public bool IsLoopback => IPAddress.IsLoopback(Listen);

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public ConsoleOptions Validate() =>
        Port is < 0 or > 65535 ? throw new ArgumentException($"--port must be between 1 and 65535, or 0 for any free port (got {Port}).")
        : Token.Length < 32 ? throw new ArgumentException("the console token must be at least 32 characters.")
        : this;
}

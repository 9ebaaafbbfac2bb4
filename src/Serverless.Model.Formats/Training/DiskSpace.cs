namespace Serverless.Model.Training;

/// <summary>
/// Not enough free space for what is about to be written: raised <em>before</em> writing, so nothing is left
/// half-written. An <see cref="IOException"/> with ENOSPC's code, so it is handled as the disk being full.
/// </summary>
public sealed class InsufficientDiskSpaceException : IOException
{
    /// <summary>ENOSPC on Linux.</summary>
    public const int NoSpaceErrno = 28;

    /// <summary>Creates the exception for a write of <paramref name="needed"/> bytes where <paramref name="available"/> are free.</summary>
    public InsufficientDiskSpaceException(string what, string path, long needed, long available)
        : base($"no space left on device for {what} in {path}: it needs {DiskSpace.Format(needed)} (with margin), {DiskSpace.Format(available)} are free", NoSpaceErrno)
    {
        Needed = needed;
        Available = available;
    }

    /// <summary>Creates the exception.</summary>
    public InsufficientDiskSpaceException() => HResult = NoSpaceErrno;

    /// <summary>Creates the exception.</summary>
    public InsufficientDiskSpaceException(string message) : base(message, NoSpaceErrno) { }

    /// <summary>Creates the exception.</summary>
    public InsufficientDiskSpaceException(string message, Exception inner) : base(message, inner) => HResult = NoSpaceErrno;

    /// <summary>Bytes the write needed, margin included.</summary>
    public long Needed { get; }

    /// <summary>Bytes free.</summary>
    public long Available { get; }
}

/// <summary>Free-space checks before large writes, and recognising a full disk in an exception.</summary>
public static class DiskSpace
{
    /// <summary>Extra room kept free beyond a write's own size. <value>16 MiB</value>.</summary>
    public const long Margin = 16L << 20;

    /// <summary>Free bytes on the file system holding <paramref name="path"/> (the nearest existing directory).</summary>
    public static long Available(string path)
    {
        var directory = Path.GetFullPath(path);
        while (!Directory.Exists(directory) && Path.GetDirectoryName(directory) is { } parent)
        {
            directory = parent;
        }

        return new DriveInfo(directory).AvailableFreeSpace;
    }

    /// <summary>Throws <see cref="InsufficientDiskSpaceException"/> unless <paramref name="bytes"/> plus <see cref="Margin"/> fit under <paramref name="path"/>.</summary>
    public static void Ensure(string path, long bytes, string what)
    {
        var available = Available(path);
        if (available < bytes + Margin)
        {
            throw new InsufficientDiskSpaceException(what, path, bytes + Margin, available);
        }
    }

    /// <summary>Whether <paramref name="error"/> (or an inner one) says the disk or a quota is full.</summary>
    public static bool IsFull(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is IOException io && (io.HResult is NoSpace or QuotaExceeded or WindowsDiskFull or WindowsHandleDiskFull
                || io.Message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase)
                || io.Message.Contains("Disk quota exceeded", StringComparison.OrdinalIgnoreCase)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Bytes as people read them.</summary>
    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => FormattableString.Invariant($"{bytes / (double)(1L << 30):0.##} GiB"),
        >= 1L << 20 => FormattableString.Invariant($"{bytes / (double)(1L << 20):0.#} MiB"),
        _ => FormattableString.Invariant($"{bytes / 1024.0:0.#} KiB"),
    };

    private const int NoSpace = InsufficientDiskSpaceException.NoSpaceErrno;
    private const int QuotaExceeded = 122;   // EDQUOT
    private const int WindowsDiskFull = unchecked((int)0x80070070);
    private const int WindowsHandleDiskFull = unchecked((int)0x80070027);
}

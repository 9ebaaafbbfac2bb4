// MSBuild inline task (see TorchSharpNativeFix.targets). Plain C#, no dependencies beyond MSBuild.
using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenElfVersionRequirement : Task
{
    [Required] public string Directory { get; set; }
    [Required] public string LibraryName { get; set; }
    [Required] public string VersionName { get; set; }

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    static readonly string[] LibStdCxxCandidates =
    {
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib64/libstdc++.so.6",
        "/usr/lib/libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
    };

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        var files = System.IO.Directory.GetFiles(Directory, LibraryName, SearchOption.AllDirectories);
        if (files.Length == 0) return true;

        var libstdcxx = LibStdCxxCandidates.FirstOrDefault(File.Exists);
        if (libstdcxx == null)
        {
            Log.LogMessage(MessageImportance.Low, "No system libstdc++ found; leaving " + LibraryName + " as shipped.");
            return true;
        }
        if (Contains(File.ReadAllBytes(libstdcxx), Encoding.ASCII.GetBytes(VersionName + "\0")))
        {
            Log.LogMessage(MessageImportance.Low, libstdcxx + " provides " + VersionName + "; no change needed.");
            return true;
        }

        foreach (var file in files)
        {
            try
            {
                var changed = Weaken(file);
                Log.LogMessage(MessageImportance.Normal, (changed ? "Marked " : "Already weak: ") + VersionName + " in " + file);
            }
            catch (Exception e)
            {
                Log.LogError("Could not patch " + file + ": " + e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    static bool Contains(byte[] haystack, byte[] needle)
    {
        for (var i = 0; i <= haystack.Length - needle.Length; i++)
        {
            var j = 0;
            while (j < needle.Length && haystack[i + j] == needle[j]) j++;
            if (j == needle.Length) return true;
        }
        return false;
    }

    bool Weaken(string path)
    {
        var elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("not a little-endian 64-bit ELF file");

        var shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        var shentsize = BitConverter.ToUInt16(elf, 0x3A);
        var shnum = BitConverter.ToUInt16(elf, 0x3C);

        for (var s = 0; s < shnum; s++)
        {
            var sh = shoff + s * shentsize;
            if (BitConverter.ToUInt32(elf, (int)sh + 4) != ShtGnuVerneed) continue;
            var offset = (long)BitConverter.ToUInt64(elf, (int)sh + 0x18);
            var link = BitConverter.ToUInt32(elf, (int)sh + 0x28);
            var count = BitConverter.ToUInt32(elf, (int)sh + 0x2C); // sh_info: number of Verneed entries
            var strtab = (long)BitConverter.ToUInt64(elf, (int)(shoff + link * shentsize) + 0x18);

            var need = offset;
            for (var n = 0; n < count; n++)
            {
                var auxCount = BitConverter.ToUInt16(elf, (int)need + 2);
                var aux = need + BitConverter.ToUInt32(elf, (int)need + 8);
                for (var a = 0; a < auxCount; a++)
                {
                    var name = ReadString(elf, strtab + BitConverter.ToUInt32(elf, (int)aux + 8));
                    if (name == VersionName)
                    {
                        var flags = BitConverter.ToUInt16(elf, (int)aux + 4);
                        if ((flags & VerFlgWeak) != 0) return false;
                        BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(elf, (int)aux + 4);
                        var temp = path + ".patching";
                        File.WriteAllBytes(temp, elf);
                        // Replace by rename, never in place: the copy may be a hard link into the package cache.
                        File.Delete(path);
                        File.Move(temp, path);
                        return true;
                    }
                    aux += BitConverter.ToUInt32(elf, (int)aux + 12);
                }
                need += BitConverter.ToUInt32(elf, (int)need + 12);
            }
        }
        throw new InvalidDataException("no version requirement named " + VersionName);
    }

    static string ReadString(byte[] data, long at)
    {
        var end = at;
        while (data[end] != 0) end++;
        return Encoding.ASCII.GetString(data, (int)at, (int)(end - at));
    }
}

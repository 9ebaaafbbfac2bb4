using System.Buffers.Binary;
using SkiaSharp;

namespace Serverless.Model.Media;

/// <summary>What an image file's header declares, read without decoding.</summary>
/// <param name="Format"><c>PNG</c> or <c>JPEG</c>.</param>
/// <param name="Width">Declared width.</param>
/// <param name="Height">Declared height.</param>
/// <param name="BitDepth">Bits per sample (PNG 1–16; JPEG precision 8 or 12).</param>
/// <param name="Frames">Frames (an animated PNG declares more than one).</param>
public sealed record ImageHeader(string Format, int Width, int Height, int BitDepth, int Frames);

/// <summary>An image that cannot be used, with a message a user can act on.</summary>
public sealed class ImageFormatException(string message) : Exception(message);

/// <summary>
/// Reads PNG and JPEG files into the model's pixels and writes pixels back as PNG. Before anything is decoded, the header
/// is read and checked: the declared size must be at least <see cref="MinSide"/> on each side, at most
/// <see cref="MaxSide"/>, and at most <see cref="MaxPixels"/> in all (a decompression bomb declaring 100,000 × 100,000 is
/// refused by its header, so memory stays bounded by the limit); animated PNGs are refused (export one frame); 16-bit
/// PNGs are converted to 8 bits. Decoding (Skia) must consume the whole image: a truncated or corrupt
/// file is an error, not a partly grey picture. Transparent pixels are composited over black; the image is scaled so
/// its longer side is the model's size (aspect kept, area-averaged with mipmaps), centred and padded with black, and
/// converted to grayscale with ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B) when the model has one channel.
/// </summary>
public static class ImageCodec
{
    /// <summary>The smallest side accepted.</summary>
    public const int MinSide = 2;

    /// <summary>The largest side accepted.</summary>
    public const int MaxSide = 16384;

    /// <summary>The most pixels accepted (decoded as 4 bytes each: at most 96 MiB).</summary>
    public const long MaxPixels = 24_000_000;

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Reads and checks the header of <paramref name="path"/>; throws <see cref="ImageFormatException"/> saying what is wrong.</summary>
    public static ImageHeader ReadHeader(string path)
    {
        using var stream = File.OpenRead(path);
        if (stream.Length == 0)
        {
            throw new ImageFormatException("the file is empty (0 bytes).");
        }

        var head = new byte[8];
        var read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = 0;
        ImageHeader header;
        if (read == 8 && head.AsSpan().SequenceEqual(PngSignature))
        {
            header = ReadPngHeader(stream);
        }
        else if (read >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
        {
            header = ReadJpegHeader(stream);
        }
        else
        {
            throw new ImageFormatException(Describe(head.AsSpan(0, read), Path.GetExtension(path)));
        }

        if (header.Width < MinSide || header.Height < MinSide)
        {
            throw new ImageFormatException($"the image is {header.Width} × {header.Height}; each side must be at least {MinSide} pixels.");
        }

        if (header.Width > MaxSide || header.Height > MaxSide || (long)header.Width * header.Height > MaxPixels)
        {
            throw new ImageFormatException($"the header declares {header.Width:N0} × {header.Height:N0} pixels, over the limit of {MaxSide:N0} a side and {MaxPixels:N0} in all " +
                "(refused before decoding: a file this size could be a decompression bomb); scale the image down.");
        }

        if (header.Frames > 1)
        {
            throw new ImageFormatException($"the image is an animated PNG with {header.Frames} frames; export one frame as a still PNG.");
        }

        return header;
    }

    private static string Describe(ReadOnlySpan<byte> head, string extension)
    {
        var what = head switch
        {
            [(byte)'G', (byte)'I', (byte)'F', ..] => "a GIF",
            [(byte)'R', (byte)'I', (byte)'F', (byte)'F', ..] => "a RIFF file (WAV or WebP)",
            [(byte)'B', (byte)'M', ..] => "a BMP",
            [0x1F, 0x8B, ..] => "gzip-compressed data",
            _ when head.Length > 0 && head.ToArray().All(b => b is 9 or 10 or 13 or (>= 32 and < 127)) => "text",
            _ => "not a PNG or JPEG",
        };
        return $"the file is named {extension} but its content is {what}; images must be PNG or JPEG.";
    }

    private static ImageHeader ReadPngHeader(Stream stream)
    {
        using var reader = new BinaryReader(stream, System.Text.Encoding.ASCII, leaveOpen: true);
        stream.Position = 8;
        int width = 0, height = 0, depth = 0, frames = 1;
        var sawHeader = false;
        for (var chunk = 0; chunk < 256; chunk++)
        {
            if (stream.Length - stream.Position < 12)
            {
                throw new ImageFormatException(sawHeader ? "the PNG is truncated: it ends before its image data." : "the PNG is truncated: it ends inside its header.");
            }

            var length = BinaryPrimitives.ReadUInt32BigEndian(reader.ReadBytes(4));
            var type = System.Text.Encoding.ASCII.GetString(reader.ReadBytes(4));
            if (length > int.MaxValue || stream.Position + length + 4 > stream.Length)
            {
                throw new ImageFormatException($"the PNG is truncated or corrupt: its {type} chunk declares {length:N0} bytes, past the end of the file.");
            }

            if (chunk == 0 && type != "IHDR")
            {
                throw new ImageFormatException("the PNG is corrupt: it does not start with an IHDR header chunk.");
            }

            if (type == "IHDR")
            {
                if (length != 13)
                {
                    throw new ImageFormatException("the PNG is corrupt: its IHDR chunk is not 13 bytes.");
                }

                var data = reader.ReadBytes(13);
                width = (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(data));
                height = (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(4)));
                depth = data[8];
                sawHeader = true;
                stream.Position += 4;
                continue;
            }

            if (type == "acTL" && length >= 8)
            {
                frames = (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(reader.ReadBytes(4)));
                stream.Position += length - 4 + 4;
                continue;
            }

            if (type is "IDAT" or "IEND")
            {
                break;
            }

            stream.Position += length + 4;
        }

        return new ImageHeader("PNG", width, height, depth, frames);
    }

    private static ImageHeader ReadJpegHeader(Stream stream)
    {
        stream.Position = 2;
        Span<byte> two = stackalloc byte[2];
        for (var segment = 0; segment < 1024; segment++)
        {
            var marker = NextMarker(stream);
            if (marker is >= 0xD0 and <= 0xD7 or 0x01)
            {
                continue;   // standalone markers
            }

            if (marker is 0xD9 or 0xDA)
            {
                throw new ImageFormatException("the JPEG is corrupt: its image data starts before any frame header (SOF).");
            }

            if (stream.ReadAtLeast(two, 2, throwOnEndOfStream: false) < 2)
            {
                break;
            }

            var length = BinaryPrimitives.ReadUInt16BigEndian(two);
            if (length < 2)
            {
                throw new ImageFormatException("the JPEG is corrupt: a segment declares a length under 2.");
            }

            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC))
            {
                Span<byte> frame = stackalloc byte[5];
                if (stream.ReadAtLeast(frame, 5, throwOnEndOfStream: false) < 5)
                {
                    break;
                }

                return new ImageHeader("JPEG", BinaryPrimitives.ReadUInt16BigEndian(frame[3..]), BinaryPrimitives.ReadUInt16BigEndian(frame[1..]), frame[0], 1);
            }

            stream.Position += length - 2;
        }

        throw new ImageFormatException("the JPEG is truncated: it ends before its frame header (SOF).");
    }

    private static int NextMarker(Stream stream)
    {
        int b;
        do
        {
            b = stream.ReadByte();
        }
        while (b is not (0xFF or -1));

        do
        {
            b = stream.ReadByte();
        }
        while (b == 0xFF);

        return b >= 0 ? b : throw new ImageFormatException("the JPEG is truncated: it ends before its frame header (SOF).");
    }

    /// <summary>
    /// Decodes <paramref name="path"/> into <paramref name="size"/> × <paramref name="size"/> × <paramref name="channels"/>
    /// bytes in raster order (row by row, channels interleaved); throws <see cref="ImageFormatException"/>.
    /// </summary>
    public static byte[] Read(string path, int size, int channels)
    {
        var header = ReadHeader(path);
        using var data = SKData.Create(path) ?? throw new ImageFormatException("the file could not be read.");
        using var codec = SKCodec.Create(data) ?? throw new ImageFormatException($"the {header.Format} is corrupt: it could not be decoded.");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Premul);
        if (info.Width != header.Width || info.Height != header.Height)
        {
            throw new ImageFormatException($"the {header.Format} is corrupt: its header says {header.Width} × {header.Height} but it decodes as {info.Width} × {info.Height}.");
        }

        using var full = new SKBitmap(info);
        var result = codec.GetPixels(info, full.GetPixels());
        if (result != SKCodecResult.Success)
        {
            throw new ImageFormatException(result == SKCodecResult.IncompleteInput
                ? $"the {header.Format} is truncated: its image data ends before the last row."
                : $"the {header.Format} is corrupt: decoding failed ({result}).");
        }

        return Fit(full, size, channels);
    }

    /// <summary>Scales <paramref name="image"/> to fit the square (aspect kept, centred, black padding) and returns its values.</summary>
    internal static byte[] Fit(SKBitmap image, int size, int channels)
    {
        var scale = (double)size / Math.Max(image.Width, image.Height);
        var w = Math.Clamp((int)Math.Round(image.Width * scale), 1, size);
        var h = Math.Clamp((int)Math.Round(image.Height * scale), 1, size);
        using var target = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(target))
        using (var source = SKImage.FromBitmap(image))
        {
            canvas.Clear(SKColors.Black);
            var destination = SKRect.Create((size - w) / 2f, (size - h) / 2f, w, h);
            canvas.DrawImage(source, destination, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
        }

        var rgba = target.GetPixelSpan();
        var values = new byte[size * size * channels];
        for (var p = 0; p < size * size; p++)
        {
            // Over opaque black the premultiplied colour is the composited colour.
            var (r, g, b) = (rgba[p * 4], rgba[p * 4 + 1], rgba[p * 4 + 2]);
            if (channels == 1)
            {
                values[p] = (byte)Math.Clamp(Math.Round(0.299 * r + 0.587 * g + 0.114 * b), 0, 255);
            }
            else
            {
                values[p * 3] = r;
                values[p * 3 + 1] = g;
                values[p * 3 + 2] = b;
            }
        }

        return values;
    }

    /// <summary>
    /// Writes images (each <paramref name="size"/>² × <paramref name="channels"/> bytes) as one PNG: a grid of
    /// <paramref name="columns"/> columns, each image magnified <paramref name="zoom"/>× (nearest neighbour) with a
    /// one-pixel grey gap.
    /// </summary>
    public static void WriteGrid(string path, IReadOnlyList<byte[]> images, int size, int channels, int columns, int zoom = 4)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentOutOfRangeException.ThrowIfZero(images.Count);
        columns = Math.Clamp(columns, 1, images.Count);
        var rows = (images.Count + columns - 1) / columns;
        var cell = size * zoom + 1;
        using var grid = new SKBitmap(new SKImageInfo(columns * cell + 1, rows * cell + 1, SKColorType.Rgba8888, SKAlphaType.Opaque));
        grid.Erase(new SKColor(96, 96, 96));
        var pixels = grid.GetPixelSpan();
        var stride = grid.RowBytes;
        for (var i = 0; i < images.Count; i++)
        {
            var (x0, y0) = (1 + i % columns * cell, 1 + i / columns * cell);
            for (var y = 0; y < size * zoom; y++)
            {
                for (var x = 0; x < size * zoom; x++)
                {
                    var p = (y / zoom * size + x / zoom) * channels;
                    var o = (y0 + y) * stride + (x0 + x) * 4;
                    pixels[o] = images[i][p];
                    pixels[o + 1] = images[i][channels == 1 ? p : p + 1];
                    pixels[o + 2] = images[i][channels == 1 ? p : p + 2];
                    pixels[o + 3] = 255;
                }
            }
        }

        using var encoded = grid.Encode(SKEncodedImageFormat.Png, 100) ?? throw new IOException($"PNG encoding failed for {path}.");
        using var file = File.Create(path);
        encoded.SaveTo(file);
    }
}

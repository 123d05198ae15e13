// EPUBCheck for many EPUBs in one JVM: pubkit starts it with EPUBCheck's jar on the class
// path (`java -cp epubcheck.jar EpubCheckServer.java`) and writes one line per EPUB: the
// EPUB's path, a tab, and the file for EPUBCheck's JSON report. Each check answers with one
// line, "done<TAB>exit code", once the report is written. Starting a JVM and loading
// EPUBCheck's schemas takes seconds; a check in a loaded one, a fraction of a second.
//
// Two ways to run:
//   (no arguments)                      requests on standard input, for one build;
//   --listen PORT-FILE IDLE-SECONDS     a daemon shared by the builds that follow: it
//       listens on the loopback interface, writes "port token pid" to PORT-FILE (readable
//       by its owner only), takes connections that open with the token (each served by a
//       thread of its own, the checks one at a time), and exits once none has been open
//       for IDLE-SECONDS.
import com.adobe.epubcheck.tool.EpubChecker;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicInteger;

public class EpubCheckServer {
    public static void main(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("--listen")) {
            listen(Path.of(args[1]), Integer.parseInt(args[2]));
            return;
        }
        serve(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)), System.out);
    }

    static void serve(BufferedReader in, PrintStream out) throws IOException {
        PrintStream stdout = System.out;
        PrintStream stderr = System.err;
        // EPUBCheck prints its progress and summary as it goes: the JSON report is the answer.
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        String line;
        while ((line = in.readLine()) != null) {
            String[] request = line.split("\t", 2);
            if (request.length != 2) {
                out.println("error\tbad request");
                out.flush();
                continue;
            }
            int code;
            synchronized (EpubCheckServer.class) {  // one check at a time, whoever asks
                System.setOut(quiet);
                System.setErr(quiet);
                try {
                    code = new EpubChecker().run(new String[] {request[0], "--json", request[1], "-q"});
                } catch (Throwable failure) {
                    code = -1;
                } finally {
                    System.setOut(stdout);
                    System.setErr(stderr);
                }
            }
            out.println("done\t" + code);
            out.flush();
        }
    }

    static void listen(Path portFile, int idleSeconds) throws IOException {
        byte[] secret = new byte[16];
        new SecureRandom().nextBytes(secret);
        String token = HexFormat.of().formatHex(secret);
        try (ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
            server.setSoTimeout(idleSeconds * 1000);
            Path written = portFile.resolveSibling(portFile.getFileName() + "." + ProcessHandle.current().pid());
            Files.writeString(written, "");
            Files.setPosixFilePermissions(written, PosixFilePermissions.fromString("rw-------"));
            Files.writeString(written, server.getLocalPort() + " " + token + " " + ProcessHandle.current().pid() + "\n");
            Files.move(written, portFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            // Each connection is served by a thread of its own (the workers of a cluster's
            // machine each hold one), their checks one at a time; the daemon is idle once
            // no connection is open and none came for IDLE-SECONDS.
            AtomicInteger open = new AtomicInteger();
            while (true) {
                Socket connection;
                try {
                    connection = server.accept();
                } catch (SocketTimeoutException idle) {
                    if (open.get() > 0) {
                        continue;
                    }
                    break;
                }
                open.incrementAndGet();
                Thread served = new Thread(() -> {
                    try (connection) {
                        BufferedReader in = new BufferedReader(
                            new InputStreamReader(connection.getInputStream(), StandardCharsets.UTF_8));
                        PrintStream out = new PrintStream(connection.getOutputStream(), true, StandardCharsets.UTF_8);
                        if (token.equals(in.readLine())) {
                            out.println("ready");
                            serve(in, out);
                        }
                    } catch (IOException broken) {
                        // the build went away: wait for the next one
                    } finally {
                        open.decrementAndGet();
                    }
                });
                served.setDaemon(true);
                served.start();
            }
        } finally {
            try {
                String mine = " " + ProcessHandle.current().pid();
                if (Files.readString(portFile).strip().endsWith(mine)) {
                    Files.delete(portFile);
                }
            } catch (IOException gone) {
                // another daemon's file, or none
            }
        }
    }
}

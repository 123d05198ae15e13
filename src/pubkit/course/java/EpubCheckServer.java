// EPUBCheck for a whole build in one JVM: pubkit starts it once, with EPUBCheck's jar on
// the class path (`java -cp epubcheck.jar EpubCheckServer.java`), then writes one line per
// EPUB to its standard input: the EPUB's path, a tab, and the file for EPUBCheck's JSON
// report. Each check answers with one line, "done<TAB>exit code", once the report is
// written. A JVM started for each EPUB costs a second or two of work before the check.
import com.adobe.epubcheck.tool.EpubChecker;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

public class EpubCheckServer {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = System.out;
        PrintStream err = System.err;
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
            System.setOut(quiet);
            System.setErr(quiet);
            try {
                code = new EpubChecker().run(new String[] {request[0], "--json", request[1], "-q"});
            } catch (Throwable failure) {
                code = -1;
            } finally {
                System.setOut(out);
                System.setErr(err);
            }
            out.println("done\t" + code);
            out.flush();
        }
    }
}

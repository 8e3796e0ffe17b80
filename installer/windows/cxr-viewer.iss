; Inno Setup 6 script: a Windows installer around the PyInstaller bundle dist\cxr-viewer\.
;
; Build on Windows (PyInstaller cannot cross-compile; see installer\README.md):
;   .venv\Scripts\python -m PyInstaller --noconfirm --distpath dist --workpath build\pyinstaller installer\cxr-viewer.spec
;   "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" /DAppVersion=0.1.0 installer\windows\cxr-viewer.iss
; Output: dist\cxr-viewer-<version>-windows-x64-setup.exe
;
; The spec makes two executables on Windows: cxr-viewer.exe (console: command line, --self-test)
; and cxr-viewer-gui.exe (windowed: what the shortcuts start).

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "CXR Viewer"
#define AppExe "cxr-viewer-gui.exe"
#define CliExe "cxr-viewer.exe"
#define Root "..\.."

[Setup]
; A fixed AppId keeps upgrades and uninstalls pointing at the same installation.
AppId={{6E0C2D4B-5B8F-4C52-9E1A-2F7C3D9A41B7}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=cxr-viewer project
AppComments=Research use only - AI second opinion, not for primary diagnosis
DefaultDirName={autopf}\CXR Viewer
DefaultGroupName=CXR Viewer
DisableProgramGroupPage=yes
; Per-user install by default (no administrator needed); the dialog offers all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
SetupIconFile={#Root}\resources\icons\cxr-viewer.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName} {#AppVersion}
InfoBeforeFile=notice.txt
OutputDir={#Root}\dist
OutputBaseFilename=cxr-viewer-{#AppVersion}-windows-x64-setup
; The bundle is ~1.5 GB, mostly TensorFlow: LZMA2 solid compression roughly halves it.
Compression=lzma2/max
SolidCompression=yes
LZMANumBlockThreads=4
WizardStyle=modern
ChangesAssociations=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "dcmassoc"; Description: "Open .dcm files with {#AppName}"; GroupDescription: "File associations:"; Flags: unchecked

[Files]
; Everything PyInstaller produced: both executables and _internal\ (Python, Qt, TensorFlow,
; models\default, resources\). The Linux install scripts are not needed here.
Source: "{#Root}\dist\cxr-viewer\*"; DestDir: "{app}"; Excludes: "*.sh"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Chest radiograph viewer (research use only)"
Name: "{group}\{#AppName} self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\{#CliExe}"" --self-test"; IconFilename: "{app}\{#AppExe}"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; Per-user or machine-wide, following the privileges chosen above (HKA).
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "CXRViewer.dcm"; ValueData: ""; Flags: uninsdeletevalue; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\CXRViewer.dcm"; ValueType: string; ValueName: ""; ValueData: "DICOM image"; Flags: uninsdeletekey; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\CXRViewer.dcm\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"; Tasks: dcmassoc
Root: HKA; Subkey: "Software\Classes\CXRViewer.dcm\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""; Tasks: dcmassoc

[Run]
; In a console window that stays open, so the reader sees the one-line result.
Filename: "{cmd}"; Parameters: "/k ""{app}\{#CliExe}"" --self-test"; Description: "Run the installation self-test (about a minute)"; Flags: postinstall unchecked nowait
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: postinstall nowait skipifsilent

